"""Curation: tag a build's rows (judge tags, language, reward, safety, near-duplicates),
then filter them into the `filtered` view, the way Magpie turned 4M rows into 300K.

kit.py      what a tagger is made of: context, step bases and the sink to the tag stores
store.py    the tag store: committed chunks, read by uuid a slice at a time
tag_rows.py the pipeline's first step: the rows some tagger lacks, read from the shards
join.py     the stored values joined onto the rows, a shard at a time
labels.py   Magpie's label vocabularies and their order
judge.py    judge prompts and schemas (quality, difficulty, category, safety) and parsing
neardup.py  embeddings, FAISS neighbours and duplicate groups (union-find)
filters.py  rules and presets -> the `filtered` view and its funnel (rows seen in order)
run.py      the stage: plan, run the pipeline, rewrite the shards, write view and manifest
"""
