"""The ARIES workflow: collect (generate + select) and iterate (stages of fit and collection)."""
