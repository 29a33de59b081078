"""What a browser gets from the API: the chat widget and its demo page, and the support team's
console (pages, signed-in sessions)."""
