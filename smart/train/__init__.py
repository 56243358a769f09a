"""Training: the pretraining loop (:mod:`.pretrain`), checkpoints, torch.distributed set-up, run logging and the
optimiser/schedules. Submodules are imported explicitly so ``import smart.train`` stays cheap."""
