"""The sections of ``bench/gpu_check.py`` (one prepared run that tells what a first GPU run
would): ``config`` (sizes, time caps, step configurations), ``common`` (context, timing,
synthetic batches), the sections in ``model_sections``, ``run_sections`` and
``throughput_sections``, and ``report`` (the Markdown). docs/GPU.md describes the check."""
