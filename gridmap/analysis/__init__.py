"""Analysis of cases and hazards: rates, hot spots, repeats, trends, scorecards, ledgers, exports."""
