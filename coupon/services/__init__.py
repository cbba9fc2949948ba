"""Service functions: the business rules. They take their collaborators as arguments and know no Flask."""
