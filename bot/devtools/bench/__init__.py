"""``python -m bot bench``: how fast the bot answers under gunicorn, and where its time goes.

``run`` orchestrates (the bot as the Procfile runs it, a bare gunicorn floor, the sandbox as
Webex); ``driver`` is the separate process that sends the webhooks; ``workload`` builds them;
``observe`` timestamps what the sandbox records; ``phases`` measures; ``budget`` splits an
interaction into steps; ``figures``, ``stats`` and ``report`` turn it all into the table and JSON.
"""
