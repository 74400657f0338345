"""`make bench`: what each upload costs and how it grows (`python -m bench --help`).

Every figure is measured in the same run next to a baseline, and reported as a ratio,
so a laptop's speed cancels out: warm cost per event and cold start against a bare
handler, synth time against a one-stack app. See :mod:`bench.__main__` for the sections.
"""
