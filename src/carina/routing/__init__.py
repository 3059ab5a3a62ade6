"""Routing: send destinations, transfers with retries and a log, automatic forwarding rules
(docs/routing.md)."""
