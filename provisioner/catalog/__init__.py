"""The Calling Plan catalog: which SKUs provide which plan, in which countries, with how many minutes. Pure data.

The data lives in `catalog.yaml` beside this module (every entry cites the domain reference); `load_catalog()`
parses and checks it once (cached) and can merge a user's override file over it, per plan id and offer zone:

    plans:
      payg:
        - zone: zone2
          addCountries: [HR]                      # put Croatia back into zone 2
          partNumbers: [MCOPSTN_PAYG_ZONE2_REAL]   # name the tenant's real part number

Tenant SKUs are matched to offers by part number (case-insensitive), then by service plan name for offers
whose part number is unverified; SKUs that also carry Phone System (bundles such as MCOTEAMS_ESSENTIALS,
E5 with Calling Minutes) are never classified as Calling Plans: the tool does not manage them.
"""

from __future__ import annotations

from provisioner.catalog.countries import COUNTRIES
from provisioner.catalog.loader import BUILTIN_PATH, PLAN_IDS, load_catalog
from provisioner.catalog.model import Catalog, Offer

__all__ = ["BUILTIN_PATH", "COUNTRIES", "PLAN_IDS", "Catalog", "Offer", "load_catalog"]
