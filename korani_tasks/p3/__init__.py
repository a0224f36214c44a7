"""P3: English tasks from promptsource templates, and their Korean versions.

The English side of the paper's experiments: T0's training mixture and
held-out evaluation sets, rendered with the promptsource 0.2.3 templates
(read from the installed package's YAML files, never by importing
promptsource) and with aligned Korean versions of those templates.
"""
