"""The independent topK check's resume refuses a CSV of another width instead of appending to it."""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "independent_topk_walks.py"


def test_resume_refuses_a_csv_with_other_columns(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    old = "index,intersection,kendall,label_kept\n0,0.5,0.2,1\n"  # written before the per-walk columns
    (out / "independent_topk_walks.csv").write_text(old)
    proc = subprocess.run([sys.executable, str(SCRIPT), str(run), "--out", str(out), "--resume"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "independent_topk_walks.csv" in proc.stderr and "--restarts 2" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "independent_topk_walks.csv").read_text() == old  # nothing appended
