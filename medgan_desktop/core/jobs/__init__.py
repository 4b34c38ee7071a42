"""One job per user action: the CLI and the GUI build a spec, run the job, show the result.

==========================  ================================  ==========================
action                      job                               CLI / GUI
==========================  ================================  ==========================
import and list studies     :mod:`.index` ``run_import``       ``medgan import|ls``, Browser
open a series or a file     :mod:`.index` ``open_series``      viewers (Browser, File > Open)
translate (and write it)    :mod:`.translate`                 ``medgan translate``, Translate
anonymise, export, send     :mod:`.export`                    ``medgan anonymize|send``, Export
train, resume (synthesis)   :mod:`.train`                     ``medgan train``, Train
train translation           :mod:`.train_translation`         ``medgan translate-train``, Train
sample                      :mod:`.sample`                    ``medgan sample``, Sample
evaluate                    :mod:`.evaluate`                  ``medgan evaluate``, Evaluate
reader study                :mod:`.review`                    ``medgan review``, Review
model catalogue             :mod:`.models`                    ``medgan models``, File > Import
sample study                :mod:`.sample_study`              ``medgan sample-study``, Help
==========================  ================================  ==========================

Each job takes a frozen spec plus ``progress`` and ``cancel`` and returns a typed result;
bad input raises :class:`~medgan_desktop.core.jobs.base.JobError` (one sentence).
"""
