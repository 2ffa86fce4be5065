"""The model core: schema, validation, prediction and verified loading (standard library only)."""
