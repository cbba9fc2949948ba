"""Adapters to the outside world: the Redis gate and locks, the Kafka publisher, the repositories."""
