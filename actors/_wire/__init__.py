"""The wire: what carries ports, messages and buffers between processes and hosts.

Built on the in-process core (ports, queues, clone), never imported by it.
"""
