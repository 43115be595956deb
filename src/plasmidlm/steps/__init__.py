"""The pipeline's steps: one module per rule file (rules/data.smk <-> steps/data.py, and likewise pretrain, train,
evaluate, baselines, evidence, predict, report), one function per step. Each reads the step's input files, calls
the domain modules and writes its outputs; `common` holds what several of them share.

The workflow scripts call these (the `plasmidlm` command calls the domain modules itself); they never import
Snakemake. The model-side modules (torch, transformers, scikit-learn) are imported by the steps that use them,
so that data steps start in a second.
"""
