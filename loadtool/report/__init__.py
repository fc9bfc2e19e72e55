"""Reports drawn from results files: figures (matplotlib, Agg), self-contained HTML pages.

Pure apart from writing the output files: a report reads results documents (already
parsed by `loadtool.results.read_results`) and returns figures, HTML text and, for
`compare`, rows with a verdict. docs/reports.md explains every figure.
"""
