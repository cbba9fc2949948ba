"""Process entry points beside the API: the Kafka consumer and the RQ jobs."""
