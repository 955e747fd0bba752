"""The leaderboard and what is made from it: gather (scores.json files into the tables, with bootstrap intervals and
paired tests), stats (the bootstrap and the paired test), render (Markdown and LaTeX), plots (figures and
run_metrics.csv), published (ours against the released models' published numbers), sources (the hub commits behind
each row). ``rmflow.leaderboard`` itself is the gathering's API."""

from rmflow.leaderboard.gather import (  # noqa: F401
    KEYS,
    SCORE_COLUMNS,
    Options,
    bootstrap_units,
    find_scores,
    is_released,
    main,
    model_name,
    read_scores,
    score_function,
    significance,
    tables,
)
