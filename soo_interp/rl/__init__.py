"""The paper's RL experiment: Physical Deception, MADDPG baselines, the RL SOO value with its
controls, and SOO policy fine-tuning against a sham."""
