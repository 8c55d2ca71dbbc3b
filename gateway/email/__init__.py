"""Inbound email: the SMTP server every instance runs, and how a message becomes jobs."""
