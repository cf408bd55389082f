"""dldiy-imagenet-bias."""
