"""infertop's Textual app: shows what the engine measures; holds no measuring logic."""
