// Training module: data, optimiser, schedules, metrics, trainer.
