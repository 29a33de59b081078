"""What is resolved, by whom, how fast, and where the knowledge base has gaps."""
