"""Curation: tag a build's rows (judge tags, language, reward, safety, near-duplicates),
then filter them into the `filtered` view, the way Magpie turned 4M rows into 300K.

kit.py      what a tagger is made of: context, step bases, the tag store and its sink
labels.py   Magpie's label vocabularies and their order
judge.py    judge prompts and schemas (quality, difficulty, category, safety) and parsing
neardup.py  embeddings, FAISS neighbours and duplicate groups (union-find)
filters.py  rules and presets -> the `filtered` view and its funnel
run.py      the stage: plan, run the distilabel pipeline, write columns, view and manifest
"""
