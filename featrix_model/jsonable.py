"""One conversion of numpy/pandas/enum values to plain JSON types, shared by every JSON artifact."""

from __future__ import annotations

import datetime as dt
import math
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def to_jsonable(x: Any) -> Any:
    """Dicts/lists recursively; numpy scalars → Python; NaN/inf/NaT/NA → None; timestamps → ISO text."""
    if x is None or x is pd.NaT or x is pd.NA:
        return None
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, np.ndarray)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, Enum):
        return x.value
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, str):
        return x
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, np.datetime64):
        x = pd.Timestamp(x)
    if isinstance(x, (dt.datetime, dt.date)):
        return None if pd.isna(x) else x.isoformat()
    try:
        if pd.isna(x):
            return None
    except (TypeError, ValueError):
        pass
    return str(x)
