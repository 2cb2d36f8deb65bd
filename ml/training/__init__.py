"""Training jobs: reward model, LoRA-SFT, LoRA-PPO, DPO and KTO. Each job is one module with
a frozen config dataclass and ``main(config, reporter)``, called by a worker and the CLI."""
