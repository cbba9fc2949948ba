"""The API's bodies, queries and replies as pydantic models: each field and limit declared once, for validation and
for the OpenAPI document alike."""
