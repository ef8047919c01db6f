"""provisioner: Teams Phone System and Calling Plan licensing as code (plan and apply against Microsoft Graph)."""

__version__ = "0.1.0"
