"""The training engine: a state object, one training step, validation, checkpoints, ``fit``.

Modules (imports point downward: engine -> network / loss / datasets / transforms / utils):

* :mod:`engine.config`: the small dataclasses the engine takes (built by ``cli.py``);
* :mod:`engine.data`: training set, sampler, loader and validation loaders from plain values;
* :mod:`engine.trainer`: :class:`~engine.trainer.TrainState`, ``train_step``, ``validate``,
  ``fit``;
* :mod:`engine.checkpointing`: save, resume and ``--snapshot`` (exact-resume state);
* :mod:`engine.evaluation`: evaluation loops, results files, loading a model to evaluate.
"""
