"""Dev tooling that ships for the demo: sandbox, benchmark, demo, launchers.

Nothing outside this folder imports it, except the command line that runs it."""
