"""Model implementations (one per backend) and the safetensors weight loader."""
