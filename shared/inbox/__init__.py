"""The support team's side of a conversation: handoffs and their packets, the inbox, assigning,
replying, resolving and handing back, and the webhook that tells other tools of a handoff."""
