"""The transport: everything between a registry call and the network (private).

``transport`` owns the ``httpx.AsyncClient`` and the send path; ``responses`` reads bodies
capped and within deadlines; ``headers`` checks and scrubs header values; ``proxies`` picks
the proxy per request; ``ratelimit`` paces each host; ``netbackend`` is the connection pool
underneath. Public names (``RetryPolicy``, ``RateLimits``) are exported by `aioras`.
"""
