"""Everything that speaks to a party outside Relais: platforms (shops) and fulfilment providers."""
