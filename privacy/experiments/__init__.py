"""The seed's privacy experiments: encrypted training and evaluation reproductions and the CKKS benchmark.

Not used by the product at run time; `sahayak scoring` commands and `bench/scoring.py` run them.
"""
