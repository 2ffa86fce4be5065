#!/usr/bin/env python
"""Predict on this machine: ``python cli.py --weight 180``, or any model's row with ``--set``.

``python cli.py --set Weight=200 --set Position=Catcher --json`` predicts one row of any
model (``--model`` or ``MODEL_PATH`` names it); ``python cli.py --input rows.csv --output
predictions.csv`` scores a whole CSV whose columns are the model's features.
"""

from cookbook.cli.local_predict import predictcli

if __name__ == "__main__":
    predictcli()
