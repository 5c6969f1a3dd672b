"""Events over a websocket, for a bot without a public URL: the device, the frames, the listener."""
