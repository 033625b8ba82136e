"""The paper's evaluation protocol: metrics, confidence intervals, paired comparisons, reports."""
