"""Learning from what people answered: knowledge suggestions drafted from resolved handoffs,
reviewed by operators and written into the knowledge files."""
