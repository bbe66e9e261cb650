"""Fact files: what a fact may hold (validation), and reading CSV and JSON/JSONL files of facts in
our, CounterFact's and ZsRE's layouts into validated records (fact_file.FactFile).

Below the store (which imports a file into a project's queue) and bench (which reads its cases);
it imports nothing heavier than the standard library, so the app's Edit form may use its rules.
"""
