"""The peer bench imports the official runner from a checkout whose ``models`` folders have no
__init__.py, beside this repository's own ``models`` package, and keeps both usable."""
import pytest

from configs.errors import UserError
from scripts.bench_official import import_official_runner


def test_the_official_models_package_is_imported_from_the_checkout_and_ours_stays(tmp_path):
    (tmp_path / "models" / "rdt").mkdir(parents=True)  # namespace folders, as in the official repository
    (tmp_path / "models" / "rdt" / "model.py").write_text("class RDT:\n    origin = 'official'\n")
    (tmp_path / "models" / "rdt_runner.py").write_text(
        "from models.rdt.model import RDT\n\nclass RDTRunner:\n    model_class = RDT\n")
    import models.rdt_runner as ours

    official = import_official_runner(tmp_path)
    assert official.model_class.origin == "official"
    import models.rdt_runner as again
    assert again is ours and hasattr(ours.RDTRunner, "predict_action")


def test_a_folder_without_the_runner_is_refused(tmp_path):
    with pytest.raises(UserError, match="no models/rdt_runner.py"):
        import_official_runner(tmp_path)
