"""The paper's RL experiment: Physical Deception, MADDPG baselines, the RL SOO value with its
controls, and SOO policy fine-tuning against a sham (`soo-interp rl ...`)."""
from .env import EnvConfig, PhysicalDeceptionEnv
from .finetune import FinetuneConfig, finetune
from .protocol import write_finetune, write_value
from .report import write_report
from .soo_value import pair_table, soo_value
from .training import RLTrainConfig, train, train_many

__all__ = ["EnvConfig", "FinetuneConfig", "PhysicalDeceptionEnv", "RLTrainConfig", "finetune",
           "pair_table", "soo_value", "train", "train_many", "write_finetune", "write_report",
           "write_value"]
