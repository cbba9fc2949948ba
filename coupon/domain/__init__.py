"""The domain vocabulary every layer shares: terms, errors, events, models and the commands services take."""
