"""The access room.

Access: who the caller is (keys, tokens, browser sessions), what they may do and where (scope),
what aggregates of residents they may see (disclosure control), and the audit trail.
"""
