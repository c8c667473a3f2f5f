"""The model side: role prompts, tools confined to a worktree, model construction, scripted
models. Importing this package is cheap; pydantic-ai is imported by the modules that need it."""
