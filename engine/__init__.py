"""infertop's engine: models, devices, the timed runner, statistics and profilers.

Never imports textual or tui (an import-linter contract checks it).
"""
