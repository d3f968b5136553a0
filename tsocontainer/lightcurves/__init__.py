"""lightcurves"""
