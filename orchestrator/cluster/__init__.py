"""What the replicas of the orchestrator share: the Redis client, the message bus, and what travels on it."""
