"""``python -m bot bench``: how fast the bot answers under gunicorn, and where its time goes.

``run`` orchestrates (the bot as the Procfile runs it, on each store engine, a bare gunicorn
floor, the sandbox as Webex); ``options`` reads the command line; ``stores`` gives each bot
launch a store of its own (and runs redis-server); ``processes`` launches the floor and reads
the memory of every process a server runs; ``driver`` is the separate process that sends the
webhooks; ``workload`` builds them; ``observe`` timestamps what the sandbox records; ``phases``
measures; ``budget`` splits an interaction into steps; ``figures``, ``stats`` and ``report`` turn
it all into the table and JSON.
"""
