"""English of the centre's pages, supervision (督办), satisfaction and the coded system texts."""
from __future__ import annotations

EN: dict[str, str] = {
    "发起督办": "supervise",
    "新的处置时限（可选）": "New deadline (optional)",
}
