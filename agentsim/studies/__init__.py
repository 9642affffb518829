"""Studies: one file defines a whole design — models, settings and arms crossed over the same
scenarios, replicates and seeds — and runs it into one run folder (:func:`run_study`).

The file's schema is :mod:`agentsim.studies.schema`, reading it :mod:`agentsim.studies.loader`,
running it :mod:`agentsim.studies.running`.
"""

from agentsim.studies.estimate import plan_study
from agentsim.studies.loader import STUDY_FOLDER, Study, load_study
from agentsim.studies.power import study_power
from agentsim.studies.running import check_study, open_study, run_study
from agentsim.studies.schema import StudyFile

__all__ = ["STUDY_FOLDER", "Study", "StudyFile", "check_study", "load_study", "open_study",
           "plan_study", "run_study"]
