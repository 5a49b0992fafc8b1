"""noticeboard"""
